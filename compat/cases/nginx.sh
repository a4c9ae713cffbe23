# Debian's nginx with its stock configuration (/etc/nginx/nginx.conf and the
# default site, port 80 on all addresses), in the foreground, asked from the
# same instance over one kept-alive connection, then stopped gracefully.
# The stock configuration writes /run/nginx.pid, /var/lib/nginx/* and
# /var/log/nginx/*, which the instance's private /var and /run take (empty,
# with the host's /var/lib/nginx and /var/log/nginx as empty directories),
# and serves /var/www/html, which it shows only with a volume:
# xvisor-flags: -v /var/www:/var/www:ro
# and natively in a private network (loopback only, as xvisor's --net none)
# with the same directories on private tmpfs:
# native-private: /run /var/lib/nginx /var/log/nginx
# requires: nginx curl sha256sum ps
nginx -g 'daemon off;' &
pid=$!
for _ in $(seq 100); do
    curl -s -o /dev/null http://127.0.0.1/ && break
    sleep 0.1
done
# Two requests on one connection: the second reuses it (keep-alive).
curl -sv http://127.0.0.1/ http://127.0.0.1/missing 2>&1 |
    grep -E '^< (HTTP/|Content-Type|Content-Length|Connection)|Re-using|<title>' | tr -d '\r'
curl -s http://127.0.0.1/ | sha256sum
curl -s -o /dev/null -w 'HEAD %{http_code}\n' -I http://[::1]/ || echo "no IPv6 loopback"
ps -o user=,args= --ppid "$pid" | sort | uniq -c
kill -QUIT "$pid"
wait "$pid"
echo "nginx exit $?"
cut -d' ' -f1,6-9 /var/log/nginx/access.log
echo "error.log lines: $(wc -l </var/log/nginx/error.log)"
