# redis-server in the foreground on loopback, without persistence, asked by
# redis-cli from the same instance, then shut down. No xvisor flags needed.
# Natively it runs in a private network (loopback only, as xvisor's --net
# none), so the port cannot meet another server's:
# native-private:
# requires: redis-server redis-cli
port=6390
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    --dir /tmp --logfile '' >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do
    [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break
    sleep 0.1
done
cli() { redis-cli -p "$port" "$@"; }
cli set greeting hello
cli get greeting
cli incrby counter 41
cli incr counter
cli rpush list a b c
cli lrange list 0 -1
cli hset h f1 v1 f2 v2
cli hgetall h
cli expire greeting 100
cli ttl greeting
cli dbsize
printf 'PING\r\nECHO pipelined\r\n' | cli
cli shutdown nosave
wait "$pid"
echo "redis exit $?"
