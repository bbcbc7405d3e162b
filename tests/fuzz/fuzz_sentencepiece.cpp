// SentencePiece model files (train/tokenizer.h): loading any bytes as a
// model, then encoding and decoding a text with it.
#include "tests/fuzz/fuzz.h"
#include "train/tokenizer.h"

FLASHNAS_FUZZ_TARGET(sentencepiece) {
  const auto path = flashnas::fuzz::write_input("tokenizer.model", data, size);
  flashnas::fuzz::guard("sentencepiece", [&] {
    const auto tok = flashnas::load_sentencepiece(path);
    const auto ids = tok->encode("def f(x):\n    return {\"name\": x}  # \xc3\xa9\n");
    (void)tok->decode(ids);
    (void)tok->describe();
  });
  return 0;
}
