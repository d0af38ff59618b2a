"""moto_server, with DynamoDB writes made atomic.

moto 5.2 serves each request on its own thread, and its DynamoDB backend reads,
changes and writes an item without a lock: two concurrent UpdateItem ADDs on one
item can lose one of the additions (measured: 19 of 20 concurrent ADDs kept).
Real DynamoDB applies each write atomically; the run state's exact counts rest on
that, so the emulator is made to as well. Everything else is moto_server as is.
"""
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

_lock = threading.RLock()


def _atomic(method):
    def wrapper(*args, **kwargs):
        with _lock:
            return method(*args, **kwargs)

    wrapper.__name__ = method.__name__
    return wrapper


for _name in ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item", "get_item", "query"):
    setattr(DynamoDBBackend, _name, _atomic(getattr(DynamoDBBackend, _name)))

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
