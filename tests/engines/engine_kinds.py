"""The engine kinds the feature tests run under: the four local map executors, a Dask cluster
(the session's ``dask_client``) and DaftEngine.  A test module parametrizes ``kind`` over
``KINDS`` (or ``LOCAL_AND_DASK``) and takes the ``engine`` fixture of ``conftest.py``; it may
set ``LOCAL_WORKERS`` for the threaded and async executors (2 by default).
"""

KINDS = ["sequential", "threaded", "async", "parallel", "dask", "daft"]
LOCAL_AND_DASK = KINDS[:5]
