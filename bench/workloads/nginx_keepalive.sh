#!/bin/sh
# bench/run's nginx row: Debian's nginx (1 worker, no access log, its own
# pid file and temporary directories under a private directory in /tmp; the
# worker keeps the starting user, as bwrap's user namespace maps no other),
# listening on 127.0.0.1 only, and CLIENT making REQUESTS keep-alive GETs of
# nginx's stock welcome page over one connection. Prints the requests per
# second of the timed run (start-up and the readiness probe excluded).
# Usage: nginx_keepalive.sh CLIENT REQUESTS
set -eu
client=$1 requests=$2
d=$(mktemp -d /tmp/xvb-nginx.XXXXXX)
trap 'rm -rf "$d"' EXIT
# A port of its own: native runs share the host's loopback.
port=$((20000 + $$ % 20000))
mkdir "$d/www"
cp /usr/share/nginx/html/index.html "$d/www/"
chmod -R a+rX "$d"
cat >"$d/nginx.conf" <<CONF
worker_processes 1;
user root root;
pid $d/nginx.pid;
error_log stderr;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    include /etc/nginx/mime.types;
    keepalive_requests 100000000;
    server {
        listen 127.0.0.1:$port;
        root $d/www;
    }
}
CONF
nginx -e stderr -p "$d" -c "$d/nginx.conf" -g 'daemon off;' &
pid=$!
ready=
for _ in $(seq 200); do
    if "$client" "$port" / 1 >/dev/null 2>&1; then ready=1; break; fi
    sleep 0.02
done
if [ -z "$ready" ]; then
    echo "nginx did not answer on 127.0.0.1:$port" >&2
    kill "$pid" 2>/dev/null; wait "$pid" || true
    exit 1
fi
status=0
"$client" "$port" / "$requests" || status=$?
kill -QUIT "$pid"
wait "$pid" || status=$?
exit "$status"
