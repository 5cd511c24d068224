"""A stand-in for interLink's virtual kubelet + Slurm plugin, for the testbed only.

It registers a Node with interLink's labels and taint, turns every pod bound to it into a
Slurm job (or, in local mode, a plain subprocess) the way the interLink Slurm plugin does,
and writes pod status the way the interLink virtual kubelet does, quirks included, so that
the executor plugin meets on this machine what it will meet at a real site.

Modules: quantity, flags, sbatch, status (pure translation and status rules); batch (Slurm
and local backends); kube (API access); resolve (env and volume sources); jobfiles (job
directory); node, logs_server, agent (the running parts); __main__ (command line).
"""
