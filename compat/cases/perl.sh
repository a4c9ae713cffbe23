# perl one-liners: regexes, hashes, sorting, sprintf, file I/O.
cd "$(mktemp -d)"
perl -e 'my %h = map { $_ => length } qw(alpha beta gamma delta); print join(",", map { "$_=$h{$_}" } sort keys %h), "\n"'
perl -e 'my $s = "The quick brown fox"; (my $t = $s) =~ s/(\w+)/\u\L$1/g; print "$t\n"; print scalar(() = $s =~ /o/g), "\n"'
perl -e 'printf("%05.1f|%-6s|%x\n", 3.14159, "ab", 255)'
perl -e 'open(my $f, ">", "p.txt") or die; print $f "$_\n" for 1..5; close $f; open($f, "<", "p.txt") or die; my $s = 0; $s += $_ while <$f>; print "$s\n"'
perl -MList::Util=sum,max -e 'print sum(1..100), " ", max(3, 9, 2), "\n"'
perl -e 'my @a = sort { $b <=> $a } (5, 3, 9, 1); print "@a\n"; exit 3'
echo "status $?"
