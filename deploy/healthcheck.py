"""The container's HEALTHCHECK: GET /healthz on this container's own port (PORT, default 3978).

Exit 0 when the server answers 200 (the database answers), 1 otherwise. Python's standard library
only, so the slim image needs no curl.
"""

import os
import sys
import urllib.request

url = f"http://127.0.0.1:{os.environ.get('PORT') or '3978'}/healthz"
try:
    with urllib.request.urlopen(url, timeout=4) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as problem:  # HTTPError (503), refused, timeout: all unhealthy
    print(f"unhealthy: {url}: {problem}", file=sys.stderr)
    sys.exit(1)
