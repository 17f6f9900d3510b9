// Typed reads of JSON fields for the tokenizer loaders (tokenizer.json, tokenizer_config.json):
// each failure is one tandem::Error that names the file and the field's path, e.g.
// "…/tokenizer.json: added_tokens[3].id is a string ("x") but must be an integer in [0, 151700)".
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace tandem::io {

// Parses `text` (the contents of `file`); a syntax error, such as a truncated file, names the
// file and the byte where parsing stopped.
nlohmann::json parse_json_text(std::string_view text, const std::string& file);

// The member `key` of object `object`, or nullptr when it is absent or null.
const nlohmann::json* find_field(const nlohmann::json& object, std::string_view key);

// What a value is, for a message: its type and at most 40 characters of it, e.g.
// `a string ("abc")`, `an array ([1,2,3])`, `null`.
std::string describe_json(const nlohmann::json& value);

// Throws "FILE: FIELD is <what value is> but must be <want>".
[[noreturn]] void throw_bad_field(const std::string& file, const std::string& field,
                                  const nlohmann::json& value, std::string_view want);

const nlohmann::json& expect_object(const nlohmann::json& value, const std::string& file,
                                    const std::string& field);
const nlohmann::json& expect_array(const nlohmann::json& value, const std::string& file,
                                   const std::string& field);
const std::string& expect_string(const nlohmann::json& value, const std::string& file,
                                 const std::string& field);
bool expect_bool(const nlohmann::json& value, const std::string& file, const std::string& field);
// An integer in [lo, hi).
int64_t expect_int(const nlohmann::json& value, const std::string& file, const std::string& field,
                   int64_t lo, int64_t hi);

// Optional members: `fallback` when absent or null, else checked as above.
bool bool_field(const nlohmann::json& object, std::string_view key, bool fallback,
                const std::string& file, const std::string& path);
std::string string_field(const nlohmann::json& object, std::string_view key,
                         std::string_view fallback, const std::string& file,
                         const std::string& path);

}  // namespace tandem::io
