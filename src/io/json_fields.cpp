// The messages of json_fields.h: what a value is (type and a short excerpt) and what it must be.
#include "io/json_fields.h"

#include "core/error.h"

namespace tandem::io {

using nlohmann::json;

namespace {

std::string join(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
}

}  // namespace

// At most 40 characters of the value, so that a 10 MB array named in an error does not flood
// the terminal (or an HTTP client's log).
std::string describe_json(const json& value) {
    std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
    if (text.size() > 40) text = text.substr(0, 37) + "...";
    const char* article = value.is_array() || value.is_object() ? "an " : "a ";
    if (value.is_null()) return "null";
    return std::string(article) + value.type_name() + " (" + text + ")";
}

json parse_json_text(std::string_view text, const std::string& file) {
    try {
        return json::parse(text.begin(), text.end());
    } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1E999
        throw Error(file, ": not valid JSON (truncated or damaged?): ", e.what());
    }
}

const json* find_field(const json& object, std::string_view key) {
    if (!object.is_object()) return nullptr;
    auto it = object.find(key);
    return it == object.end() || it->is_null() ? nullptr : &*it;
}

void throw_bad_field(const std::string& file, const std::string& field, const json& value,
                     std::string_view want) {
    throw Error(file, ": ", field.empty() ? "the top level" : field, " is ", describe_json(value),
                " but must be ", want);
}

const json& expect_object(const json& value, const std::string& file, const std::string& field) {
    if (!value.is_object()) throw_bad_field(file, field, value, "an object");
    return value;
}

const json& expect_array(const json& value, const std::string& file, const std::string& field) {
    if (!value.is_array()) throw_bad_field(file, field, value, "an array");
    return value;
}

const std::string& expect_string(const json& value, const std::string& file,
                                 const std::string& field) {
    if (!value.is_string()) throw_bad_field(file, field, value, "a string");
    return value.get_ref<const std::string&>();
}

bool expect_bool(const json& value, const std::string& file, const std::string& field) {
    if (!value.is_boolean()) throw_bad_field(file, field, value, "true or false");
    return value.get<bool>();
}

int64_t expect_int(const json& value, const std::string& file, const std::string& field, int64_t lo,
                   int64_t hi) {
    bool in_range = false;
    if (value.is_number_unsigned())
        in_range = value.get<uint64_t>() < uint64_t(INT64_MAX) &&
                   int64_t(value.get<uint64_t>()) >= lo && int64_t(value.get<uint64_t>()) < hi;
    else if (value.is_number_integer())
        in_range = value.get<int64_t>() >= lo && value.get<int64_t>() < hi;
    if (!in_range)
        throw_bad_field(file, field, value, Error::concat("an integer in [", lo, ", ", hi, ")"));
    return value.get<int64_t>();
}

bool bool_field(const json& object, std::string_view key, bool fallback, const std::string& file,
                const std::string& path) {
    const json* v = find_field(object, key);
    return v ? expect_bool(*v, file, join(path, key)) : fallback;
}

std::string string_field(const json& object, std::string_view key, std::string_view fallback,
                         const std::string& file, const std::string& path) {
    const json* v = find_field(object, key);
    return v ? expect_string(*v, file, join(path, key)) : std::string(fallback);
}

}  // namespace tandem::io
