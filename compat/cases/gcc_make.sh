# gcc + make -j2: build a small multi-file project and run it.
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$(mktemp -d)"
cp -r "$here/data/proj/." .
make -s -j2 2>&1
./proj
./proj 7
echo "status $?"
