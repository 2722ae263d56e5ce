#!/bin/sh
# Redis on every interface of the test network, nothing persisted.
exec redis-server --bind 0.0.0.0 --protected-mode no --save '' --appendonly no --dir /tmp
