// Error types thrown by library code. `main` turns them into a message and an
// exit code; library code never prints or exits on its own.
#pragma once
#include <stdexcept>
#include <string>

namespace flashnas {

// Any failure the user can act on (bad file, bad field, missing entry).
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bad input: a malformed or invalid file, field or flag. Exit code 2.
class InputError : public Error {
 public:
  using Error::Error;
};

// The machine's fault, not the input's nor a candidate's: a file that cannot
// be written (disk full, a size limit, permissions). Exit code 1; a search
// stops on it rather than failing candidate after candidate.
class IoError : public Error {
 public:
  using Error::Error;
};

// A database that could not be reached, or was interrupted, in the middle of
// work that had reached it before: a PostgreSQL server restarting, a network
// break, SQLite still locked after its busy timeout. The work may be retried
// once the database is back (with_db_retry, common/db.h). A database that
// cannot be reached when a command starts is an InputError instead.
class DbUnavailable : public Error {
 public:
  using Error::Error;
};

// Exit codes used by the CLI.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;   // runtime failure (I/O, numerics, ...)
inline constexpr int kExitBadInput = 2;  // InputError, CLI usage errors

}  // namespace flashnas
