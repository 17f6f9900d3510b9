// The pages a new user reads first say what the program does: the README's tour uses only
// options its commands accept, and docs/PERFORMANCE.md opens with one current table whose
// commands exist. (docs/TUTORIAL.md is run by tutorial_cli_test.cpp.)
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "cli/cli_util.h"
#include "common/test_util.h"
#include "io/atomic_file.h"

namespace tandem {
namespace {

using testing::CliRun;
using testing::tandem;

std::string repo_file(const std::string& relative) {
    return testing::test_data_path("../" + relative);
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

std::vector<std::string> table_cells(const std::string& row) {
    std::vector<std::string> cells;
    std::string cell;
    for (size_t i = 1; i < row.size(); ++i) {  // row starts with '|'
        if (row[i] == '|' && row[i - 1] != '\\') {
            cells.push_back(cell);
            cell.clear();
        } else {
            cell += row[i];
        }
    }
    return cells;
}

TEST(Docs, ReadmeTourUsesOnlyOptionsTheCommandsAccept) {
    const std::string readme = io::read_file(repo_file("README.md"));
    const size_t tour = readme.find("## A tour");
    ASSERT_NE(tour, std::string::npos);
    const size_t begin = readme.find("```sh\n", tour), end = readme.find("```\n", begin + 6);
    testing::TempDir dir;
    int n_commands = 0;
    for (const std::string& line : lines_of(readme.substr(begin, end - begin))) {
        const size_t at = line.find("$T ");
        if (at == std::string::npos) continue;
        std::istringstream words(line.substr(at + 3));
        std::string word, command;
        std::vector<std::string> options;
        while (words >> word) {
            if (word.starts_with("--"))
                options.push_back(word.substr(0, word.find('=')));
            else if (options.empty() && std::regex_match(word, std::regex("[a-z]+")))
                command += (command.empty() ? "" : " ") + word;
        }
        if (command == "tokenizer") continue;  // a group: its subcommand follows
        CliRun help = tandem(dir, command + " --help");
        ASSERT_EQ(help.code, 0) << command << ": " << help.err;
        for (const std::string& option : options)
            EXPECT_NE(help.out.find(option), std::string::npos)
                << "README tour: `tandem " << command << "` has no " << option;
        ++n_commands;
    }
    EXPECT_GE(n_commands, 8);
}

TEST(Docs, PerformanceOpensWithOneCurrentTable) {
    const std::vector<std::string> lines = lines_of(io::read_file(repo_file("docs/PERFORMANCE.md")));
    size_t first_section = 0;
    while (first_section < lines.size() && !lines[first_section].starts_with("## ")) ++first_section;
    ASSERT_LT(first_section, 5u) << "a short title, then the table's section";
    EXPECT_EQ(lines[first_section], "## Where tandem stands");
    size_t header = first_section;
    while (header < lines.size() && !lines[header].starts_with("| ")) ++header;
    ASSERT_LT(header, first_section + 15) << "the table comes first";
    const std::vector<std::string> columns = table_cells(lines[header]);
    const std::vector<std::string> want = {" workload ", " peer and its settings ",
                                           " tandem / peer ", " CPU ",
                                           " command that reproduces it "};
    EXPECT_EQ(columns, want);
    int n_rows = 0;
    for (size_t i = header + 2; i < lines.size() && lines[i].starts_with("| "); ++i, ++n_rows) {
        const std::vector<std::string> cells = table_cells(lines[i]);
        ASSERT_EQ(cells.size(), want.size()) << lines[i];
        EXPECT_NE(cells[2].find('('), std::string::npos) << "a ratio with its spread: " << lines[i];
        if (cells[4] == " the same ") continue;
        std::smatch m;  // the program of the command: bench/X, build/release/bench/X or scripts/X
        ASSERT_TRUE(std::regex_search(cells[4], m,
                                      std::regex("`(build/release/)?((bench|scripts)/[a-z_.]+)")))
            << lines[i];
        const std::string program = m[2].str();
        EXPECT_TRUE(std::filesystem::exists(repo_file(program)) ||
                    std::filesystem::exists(repo_file(program + ".cpp")))
            << "no " << program << " for: " << lines[i];
    }
    EXPECT_GE(n_rows, 3);
    // Then how to reproduce, then the history.
    auto position = [&](const std::string& heading) {
        for (size_t i = 0; i < lines.size(); ++i)
            if (lines[i] == heading) return i;
        return lines.size();
    };
    EXPECT_LT(position("## How to reproduce"), position("# The measurements in detail"));
    EXPECT_LT(position("# The measurements in detail"), lines.size());
}

}  // namespace
}  // namespace tandem
