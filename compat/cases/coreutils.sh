# coreutils: ls -la, cp -r, sort, sha256sum, find — in a private temp dir,
# with fixed times so the listing is reproducible.
#
# What must differ, and why:
# - a directory's size depends on the filesystem: ext4 says 4096, tmpfs (the
#   instance's /tmp) counts its entries;
# - ls pads columns to the widest size, so spacing follows;
# - the parent (..) is the temp directory, created at run time.
# normalise: ^(d[rwxstST-]{9}[ ]+\d+[ ]+\S+[ ]+\S+[ ]+)\d+ => \1SIZE
# normalise: [ ]+ => _
# normalise: ^(d\S+_\d+_\S+_\S+_SIZE_)\d{4}-\d\d-\d\d_\d\d:\d\d_\.\.$ => \1DATE_..
cd "$(mktemp -d)"
mkdir -p src/sub/deeper
printf 'one\ntwo\nthree\n' > src/a.txt
seq 1000 | sort -R --random-source=/dev/zero > src/sub/numbers
printf '\x00\x01binary' > src/sub/deeper/bin
chmod 640 src/a.txt
find src -exec touch -h -d '2020-01-02 03:04:05' {} +
ls -la --time-style=long-iso src src/sub | sed 's/^total [0-9]*$/total N/'
cp -r src copy
diff -r src copy && echo "copies equal"
sort -n src/sub/numbers | head -3
sort src/a.txt
find src copy -type f | sort | xargs sha256sum
stat -c '%n %s %a' src/a.txt copy/a.txt
