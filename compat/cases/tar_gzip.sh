# tar and gzip round trip.
cd "$(mktemp -d)"
mkdir -p tree/x/y
for i in $(seq 1 50); do echo "line $i of file $i" > "tree/x/file$i"; done
head -c 100000 /dev/zero > tree/x/y/zeros
tar -cf - --sort=name --mtime='2020-01-01 00:00Z' --owner=0 --group=0 --numeric-owner tree | gzip -n -9 > t.tgz
sha256sum t.tgz
mkdir out && tar -xzf t.tgz -C out
diff -r tree out/tree && echo "round trip equal"
tar -tzvf t.tgz --numeric-owner | awk '{ print $1, $3, $NF }' | head -5
gzip -l t.tgz | tail -1 | awk '{ print $2 }'
