# git init, commit, log in a temp dir (fixed identity and dates).
cd "$(mktemp -d)"
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME=Tester GIT_AUTHOR_EMAIL=t@example.invalid GIT_COMMITTER_NAME=Tester GIT_COMMITTER_EMAIL=t@example.invalid
export GIT_AUTHOR_DATE='2020-01-01T00:00:00Z' GIT_COMMITTER_DATE='2020-01-01T00:00:00Z'
git init -q -b main repo && cd repo
echo "first" > a.txt && git add a.txt && git commit -q -m "first commit"
echo "second" >> a.txt && mkdir d && echo x > d/b.txt && git add -A && git commit -q -m "second commit"
git log --format='%H %an %s'
git show --stat --format='%s' HEAD | tail -3
git diff HEAD~1 --stat
git rev-parse HEAD^{tree}
git status --short | wc -l
