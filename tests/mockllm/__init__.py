"""Embedded mock LLM providers for weir's tests: each speaks one real provider's wire format and
strictly validates what it receives. Run `python -m mockllm --port 18000`, or `mockllm.start()`."""

from .server import MockServer, start
from .sigv4 import ACCESS_KEY as AWS_ACCESS_KEY, SECRET_KEY as AWS_SECRET_KEY

__all__ = ["MockServer", "start", "AWS_ACCESS_KEY", "AWS_SECRET_KEY"]
