"""HTTP handlers: parse the request, make one service call, serialize the answer."""
