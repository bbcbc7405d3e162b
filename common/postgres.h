// The PostgreSQL backend of common/db.h, through libpq. A database is a URL,
// postgresql://user@host:port/dbname (unix sockets: ?host=/folder); libpq's
// environment variables (PGHOST, PGUSER, PGPASSWORD, ...) and ~/.pgpass
// supply what it leaves out. A password in the URL is refused (it would
// reach command lines, process lists and logs). flashnas's tables live in the
// connection's current schema; flashnas writes only to a database whose
// schema holds its meta table, or none at all.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/db.h"

namespace flashnas {

std::unique_ptr<Connection> open_postgres(const std::string& url, Access access);

// The rewriting the backend applies, exposed for tests:
// "?" and "?N" parameters (outside quoted strings) to $N;
std::string pg_parameters(const std::string& sql);
// and in schemas, INTEGER PRIMARY KEY to an identity column, INTEGER to
// BIGINT and REAL to DOUBLE PRECISION (SQLite's integers and reals are 64-bit).
std::string pg_schema(const std::string& ddl);
// "INSERT OR IGNORE" to ON CONFLICT DO NOTHING; "INSERT OR REPLACE INTO
// t(cols)" to ON CONFLICT (t's primary key, from key_of) DO UPDATE SET the
// other listed columns;
std::string pg_insert_or(const std::string& sql, const std::function<std::vector<std::string>(const std::string&)>& key_of);
// InputError when `url` carries a password (user:password@ or password=).
void refuse_password_in_url(const std::string& url);

}  // namespace flashnas
