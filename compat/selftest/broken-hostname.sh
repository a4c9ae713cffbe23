# A case that must FAIL: it prints the hostname without normalising it, and
# the instance's hostname is not the host's. compat/run --cases compat/selftest
# must therefore report a failure (this proves the comparison can fail).
hostname
