"""
moto's DynamoDB made to apply each write atomically, as DynamoDB does. Imported by the
local emulator (moto-server.py) and the pipeline in a box (test/helpers/box/moto_iam.py).

moto 5.2 serves each request on its own thread, and its DynamoDB backend reads,
changes and writes an item without a lock: two concurrent UpdateItem ADDs on one
item can lose one of the additions (measured: 19 of 20 concurrent ADDs kept). The
run state's exact counts rest on atomic writes (two parters counting the last two
parts of an upload at once must both be counted, or no completion is ever asked for).
"""
import threading

from moto.dynamodb.models import DynamoDBBackend

_lock = threading.RLock()


def _atomic(method):
    def wrapper(*args, **kwargs):
        with _lock:
            return method(*args, **kwargs)

    wrapper.__name__ = method.__name__
    return wrapper


for _name in ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item", "get_item", "query"):
    setattr(DynamoDBBackend, _name, _atomic(getattr(DynamoDBBackend, _name)))
