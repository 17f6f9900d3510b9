// Streams documents out of input files, one at a time, for `tandem prepare`, the tokenizer's
// training and encoding: plain text (a whole file, or pieces between separator lines) or JSON
// Lines (one field of each object). Memory holds one document, never a whole corpus.
#pragma once

#include <cstdint>
#include <fstream>
#include <iostream>
#include <memory>
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

// The input name that stands for standard input.
inline constexpr const char* kStdinInput = "-";

// Files named directly, and the regular files under named directories (recursively, hidden
// ones skipped), in a fixed order: arguments in order, each directory sorted by path; "-"
// (stdin) stays as it is. Throws tandem::Error naming an input that does not exist, and for
// "-" given twice (stdin can be read once).
std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs);

// The bytes in all of `files` (stdin counts 0: its size is not known in advance).
int64_t total_input_bytes(const std::vector<std::string>& files);

// `file` opened for reading: the file, or std::cin for "-". Throws tandem::Error naming it.
class InputStream {
   public:
    explicit InputStream(const std::string& file);
    std::istream& get() { return is_stdin_ ? std::cin : file_; }

   private:
    bool is_stdin_ = false;
    std::ifstream file_;
};

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
    std::unique_ptr<InputStream> in_;  // null between files
    int64_t line_no_ = 0;
    int64_t bytes_read_ = 0;
    std::string line_;
};

}  // namespace tandem::io
