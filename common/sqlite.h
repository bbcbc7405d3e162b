// The SQLite backend of common/db.h: a file opened with WAL journaling, a
// busy timeout and foreign keys (or read-only, for commands that only read);
// flashnas's own databases only; every page checked once per process and file.
#pragma once
#include <filesystem>
#include <memory>

#include "common/db.h"

namespace flashnas {

std::unique_ptr<Connection> open_sqlite(const std::filesystem::path& path, Access access);

}  // namespace flashnas
