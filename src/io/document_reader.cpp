// DocumentReader: line-by-line reading of text and JSON Lines inputs.
#include "io/document_reader.h"

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace tandem::io {

namespace fs = std::filesystem;

std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs) {
    std::vector<std::string> files;
    bool has_stdin = false;
    for (const std::string& input : inputs) {
        std::error_code ec;
        if (input == kStdinInput) {
            if (has_stdin) throw Error("--input - (stdin) is given twice; it can be read once");
            has_stdin = true;
            files.push_back(input);
        } else if (fs::is_directory(input, ec)) {
            std::vector<std::string> found;
            for (auto it = fs::recursive_directory_iterator(input); it != fs::end(it); ++it) {
                std::string name = it->path().filename().string();
                if (name.starts_with(".")) {
                    if (it->is_directory()) it.disable_recursion_pending();
                    continue;
                }
                if (it->is_regular_file()) found.push_back(it->path().string());
            }
            std::sort(found.begin(), found.end());
            files.insert(files.end(), found.begin(), found.end());
        } else if (fs::is_regular_file(input, ec)) {
            files.push_back(input);
        } else {
            throw Error(input, ": no such input file or directory");
        }
    }
    return files;
}

int64_t total_input_bytes(const std::vector<std::string>& files) {
    int64_t total = 0;
    for (const std::string& f : files) {
        if (f == kStdinInput) continue;
        std::error_code ec;
        const auto size = fs::file_size(f, ec);
        if (ec) throw Error(f, ": cannot read: ", ec.message());
        total += int64_t(size);
    }
    return total;
}

InputStream::InputStream(const std::string& file) : is_stdin_(file == kStdinInput) {
    if (is_stdin_) return;
    file_.open(file, std::ios::binary);
    if (!file_) throw Error(file, ": cannot open");
}

DocumentReader::DocumentReader(std::vector<std::string> files, DocumentFormat format)
    : files_(std::move(files)), format_(std::move(format)) {}

bool DocumentReader::open_next_file() {
    if (in_) return true;
    if (file_index_ >= files_.size()) return false;
    in_ = std::make_unique<InputStream>(files_[file_index_]);
    line_no_ = 0;
    return true;
}

bool DocumentReader::next(std::string& doc) {
    while (open_next_file()) {
        bool got = format_.format == InputFormat::Jsonl ? next_jsonl(doc) : next_text(doc);
        if (got) return true;
        if (in_->get().bad()) throw Error(files_[file_index_], ": read failed");
        in_.reset();
        ++file_index_;
    }
    return false;
}

bool DocumentReader::next_text(std::string& doc) {
    std::istream& in = in_->get();
    doc.clear();
    if (format_.separator.empty()) {
        doc.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        bytes_read_ += int64_t(doc.size());
        return !doc.empty();
    }
    while (std::getline(in, line_)) {
        bytes_read_ += int64_t(line_.size()) + 1;
        std::string_view bare(line_);
        if (bare.ends_with('\r')) bare.remove_suffix(1);
        if (bare == format_.separator) {
            if (!doc.empty()) return true;
            continue;
        }
        doc += line_;
        if (!in.eof()) doc += '\n';
    }
    return !doc.empty();
}

bool DocumentReader::next_jsonl(std::string& doc) {
    const std::string& file = files_[file_index_];
    std::istream& in = in_->get();
    while (std::getline(in, line_)) {
        ++line_no_;
        bytes_read_ += int64_t(line_.size()) + 1;
        if (line_.find_first_not_of(" \t\r") == std::string::npos) continue;
        nlohmann::json row;
        try {
            row = nlohmann::json::parse(line_);
        } catch (const nlohmann::json::exception& e) {
            throw Error(file, ":", line_no_, ": not valid JSON (or not valid UTF-8): ", e.what());
        }
        if (!row.is_object() || !row.contains(format_.field) || !row[format_.field].is_string())
            throw Error(file, ":", line_no_, ": expected a JSON object with a string field \"",
                        format_.field, "\" (choose the field with --field)");
        doc = row[format_.field].get<std::string>();
        if (!doc.empty()) return true;
    }
    return false;
}

}  // namespace tandem::io
