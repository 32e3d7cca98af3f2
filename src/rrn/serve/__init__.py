"""``rrn serve``: many live streams stepped in one batched call, behind HTTP and WebSocket.

* :mod:`~rrn.serve.app`: the routes (:func:`create_app`);
* :mod:`~rrn.serve.service`: the model, the shared micro-batcher, the open streams;
* :mod:`~rrn.serve.session`: one stream: frames in, events out;
* :mod:`~rrn.serve.frames`: the frame message, image decoding within limits, sampling by
  capture time;
* :mod:`~rrn.serve.auth`: the loopback rule and :class:`~rrn.serve.auth.Guard`, the
  middleware that checks Host, Origin and the token before any route (routes opt out by being
  public);
* :mod:`~rrn.serve.metrics`: Prometheus metrics;
* :mod:`~rrn.serve.server`: running it under uvicorn, ending every stream on SIGTERM/Ctrl-C.

Needs the ``serve`` extra: ``pip install 'rrn[serve]'`` (FastAPI, uvicorn, prometheus-client,
python-multipart).
"""
