"""Imported first by the forkserver that the ``--nproc`` ranks are forked from
(``multiprocessing``'s preload, :func:`descentlab.engine.launch._launch`): the server ends
with the launcher that started it, even one killed by ``kill -9``, and its ranks with it (each
has its own parent-death signal, :func:`descentlab._osutil.die_with_parent`). Importing this
module anywhere else would tie that process to its parent the same way: only the forkserver
does."""

from descentlab._osutil import killed_with_parent

killed_with_parent()
