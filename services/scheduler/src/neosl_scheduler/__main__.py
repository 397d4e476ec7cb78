import sys

from neosl.worker_main import run_worker
from neosl_scheduler.worker import QUEUE, collectors, create_worker_app

if __name__ == "__main__":
    sys.exit(run_worker(create_worker_app, QUEUE, sys.argv[1:], collectors))
