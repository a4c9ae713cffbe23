# busybox (static) applets driven by a busybox shell script.
#
bb=$(command -v busybox) || { echo "busybox not installed"; exit 1; }
cd "$($bb mktemp -d)"
$bb sh -c '
  seq 1 20 | sort -rn | head -5
  printf "b\na\nc\na\n" | sort | uniq -c
  echo "hello world" | tr a-z A-Z | cut -c1-5
  echo "x=1;y=2" | sed "s/;/\n/" | awk -F= "{ s += \$2 } END { print s }"
  printf "alpha\nbeta\ngamma\n" > f && grep -n a f && wc -l < f
  expr 6 \* 7
  echo data | md5sum
  mkdir -p d/e && touch d/e/x && find d | sort
  basename /a/b/c.txt .txt; dirname /a/b/c.txt
  test -d d && echo "dir ok"
'
echo "status $?"
