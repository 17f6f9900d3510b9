// Streams documents out of input files, one at a time, for `tandem prepare`: plain text (a whole
// file, or pieces between separator lines) or JSON Lines (one field of each object). Memory
// holds one document, never a whole corpus.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace tandem::io {

enum class InputFormat { Text, Jsonl };

struct DocumentFormat {
    InputFormat format = InputFormat::Text;
    std::string field = "text";  // jsonl: the string field that holds the document
    // text: a line equal to this (e.g. "%" for fortune files) ends a document; empty: each file
    // is one document.
    std::string separator;
};

// Files named directly, and the regular files under named directories (recursively, hidden
// ones skipped), in a fixed order: arguments in order, each directory sorted by path. Throws
// tandem::Error naming an input that does not exist.
std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs);

class DocumentReader {
   public:
    DocumentReader(std::vector<std::string> files, DocumentFormat format);
    // The next non-empty document; false after the last. Throws tandem::Error naming file:line
    // for a jsonl line that is not a JSON object with a string field (invalid UTF-8 included).
    bool next(std::string& doc);
    int64_t bytes_read() const { return bytes_read_; }

   private:
    bool open_next_file();
    bool next_text(std::string& doc);
    bool next_jsonl(std::string& doc);

    std::vector<std::string> files_;
    DocumentFormat format_;
    size_t file_index_ = 0;
    std::ifstream in_;
    bool is_open_ = false;
    int64_t line_no_ = 0;
    int64_t bytes_read_ = 0;
    std::string line_;
};

}  // namespace tandem::io
