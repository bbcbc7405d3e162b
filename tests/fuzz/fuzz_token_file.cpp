// Token files (train/token_file.h): the header, metadata, document table,
// tokens and completion mask of any bytes; every accessor a reader of the
// file (training, eval, data inspect) uses.
#include <algorithm>
#include <vector>

#include "tests/fuzz/fuzz.h"
#include "train/token_file.h"

FLASHNAS_FUZZ_TARGET(token_file) {
  const auto path = flashnas::fuzz::write_input("fuzz.tokens", data, size);
  flashnas::fuzz::guard("token_file", [&] {
    flashnas::TokenFile tf(path);
    tf.check_ids();
    std::vector<int64_t> ids;
    std::vector<uint8_t> mask;
    for (int64_t d = 0; d < tf.num_docs(); ++d) {
      const int64_t b = tf.doc_begin(d), n = std::min<int64_t>(tf.doc_end(d) - b, 4096);
      ids.resize(static_cast<size_t>(n));
      mask.resize(static_cast<size_t>(n));
      tf.read(b, n, ids.data());
      tf.read_mask(b, n, mask.data());
      (void)tf.doc_bytes(d);
      (void)tf.doc_completion_bytes(d);
      (void)tf.doc_completion_tokens(d);
    }
  });
  return 0;
}
