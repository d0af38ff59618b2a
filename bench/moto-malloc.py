"""
What completing a multipart upload costs moto, with glibc's allocator as it is and as bench/emulators.ts
sets it for moto (GLIBC_TUNABLES there). Runs moto's S3 backend in this process, with no server:

    python3 bench/moto-malloc.py
    GLIBC_TUNABLES=glibc.malloc.hugetlb=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184 python3 bench/moto-malloc.py

It uploads 8 parts of 64 MiB and completes them, and prints the CPU seconds of each step and where the
completion spent them (cProfile). On this project's VM a page fault is dear, and moto copies every byte
into fresh memory several times over.
"""
import cProfile
import os
import pstats
import time

os.environ.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "true")
from moto.s3.models import s3_backends  # noqa: E402

backend = s3_backends["123456789012"]["us-east-1"]
backend.create_bucket("bench-malloc", "us-east-1")
part = os.urandom(1 << 20) * 64
upload = backend.create_multipart_upload("bench-malloc", "blob", {}, None, None, None, None, None)
upload_id = getattr(upload, "id", upload)
started = time.process_time()
etags = [(n, backend.upload_part("bench-malloc", upload_id, n, part).etag) for n in range(1, 9)]
parts_cpu = time.process_time() - started
profile = cProfile.Profile()
profile.enable()
backend.complete_multipart_upload("bench-malloc", upload_id, etags)
profile.disable()
print(f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '')}")
print(f"8 parts of 64 MiB: {parts_cpu:.2f} s CPU; completion: {time.process_time() - started - parts_cpu:.2f} s CPU")
pstats.Stats(profile).sort_stats("tottime").print_stats(8)
