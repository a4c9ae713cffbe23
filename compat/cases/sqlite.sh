# sqlite3: create, insert, select, aggregate, on a file database.
cd "$(mktemp -d)"
sqlite3 test.db <<'SQL'
CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, age INTEGER);
INSERT INTO people (name, age) VALUES ('ada', 36), ('alan', 41), ('grace', 85), ('linus', 29);
CREATE INDEX by_age ON people(age);
SELECT name, age FROM people WHERE age > 30 ORDER BY age DESC;
SELECT count(*), sum(age), round(avg(age), 2) FROM people;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) SELECT sum(x) FROM c;
PRAGMA integrity_check;
SQL
echo "status $?"
