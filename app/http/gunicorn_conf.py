"""gunicorn settings of the ``web`` process (``gunicorn -c python:app.http.gunicorn_conf``).

The bind address and worker count come from the command line in the Procfile
(``$PORT``, ``$WEB_CONCURRENCY``), as Heroku-style hosts expect.
"""

#: gevent.pywsgi parses HTTP in fewer Python steps than gunicorn's own parser: +35-40 % requests/s here
#: (bench/webhook.py; both are gunicorn gevent workers, same monkey-patching, same graceful stop).
worker_class = "gevent_pywsgi"
#: Concurrent requests per worker (greenlets).
worker_connections = 1000
#: SIGTERM: stop accepting, finish in-flight requests (Heroku sends SIGKILL after 30 s).
graceful_timeout = 25
keepalive = 75
accesslog = None
