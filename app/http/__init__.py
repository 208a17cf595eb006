"""The web process: a Falcon WSGI app served by gunicorn's gevent worker."""
