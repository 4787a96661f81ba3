"""Imported first by the forkserver that the ``--nproc`` ranks are forked from
(``multiprocessing``'s preload, :func:`descentlab.engine.launch._launch`): the server ends
with the launcher that started it, even one killed by ``kill -9``, and its ranks with it (each
has its own parent-death signal, :func:`descentlab._osutil.die_with_parent`); a SIGTERM to the
command's process group does not end it (multiprocessing makes it ignore SIGINT): the launcher
stops the ranks. Importing this module anywhere else would tie that process to its parent the
same way: only the forkserver does. It loads the ranks' engine frozen (``loading_frozen``)."""

import signal

from descentlab._osutil import killed_with_parent, loading_frozen

killed_with_parent()
signal.signal(signal.SIGTERM, signal.SIG_IGN)

with loading_frozen():
    import descentlab.engine.launch
    import descentlab.problems.charlm  # noqa: F401
