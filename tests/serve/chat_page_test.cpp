// The chat page: a well-formed HTML document (balanced elements, unique ids), with the controls
// the issue asks for, reaching nothing beyond its own origin, and a script that Node parses. The
// browser test that drives it against a live server comes with the server.
#include "serve/chat_page.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <vector>

namespace tandem::serve {
namespace {

const std::string kPage(chat_page_html());

bool has(const std::string& text) {
    return kPage.find(text) != std::string::npos;
}

// The text between the first <tag ...> and its </tag>.
std::string element_text(const std::string& tag) {
    const size_t open = kPage.find("<" + tag);
    const size_t body = kPage.find('>', open) + 1;
    return kPage.substr(body, kPage.find("</" + tag + ">", body) - body);
}

TEST(ChatPage, IsAnHtmlDocument) {
    EXPECT_EQ(kPage.rfind("<!DOCTYPE html>\n<html lang=\"en\">", 0), 0u);
    EXPECT_EQ(kPage.substr(kPage.size() - 8), "</html>\n");
    EXPECT_TRUE(has("<meta charset=\"utf-8\">"));
    EXPECT_EQ(element_text("title"), "tandem chat");
}

// Every element opened outside <script> and <style> is closed in order (void elements aside).
TEST(ChatPage, ElementsAreBalanced) {
    const std::set<std::string> kVoid = {"meta", "input", "br", "img", "link", "hr"};
    std::vector<std::string> open;
    size_t at = kPage.find("<html");
    while ((at = kPage.find('<', at)) != std::string::npos) {
        const size_t end = kPage.find('>', at);
        ASSERT_NE(end, std::string::npos);
        const bool closing = kPage[at + 1] == '/';
        const size_t name_at = at + 1 + closing;
        const std::string name =
            kPage.substr(name_at, kPage.find_first_of(" \n>", name_at) - name_at);
        if (closing) {
            ASSERT_FALSE(open.empty()) << "</" << name << "> closes nothing";
            ASSERT_EQ(open.back(), name) << "</" << name << "> closes <" << open.back() << ">";
            open.pop_back();
        } else if (!kVoid.count(name)) {
            open.push_back(name);
        }
        at = end;
        // Skip the contents of script and style: their "<" are not tags.
        if (!closing && (name == "script" || name == "style")) at = kPage.find("</" + name, at);
    }
    EXPECT_TRUE(open.empty()) << "unclosed <" << open.back() << ">";
}

TEST(ChatPage, HasItsControls) {
    std::set<std::string> ids;
    for (size_t at = 0; (at = kPage.find(" id=\"", at)) != std::string::npos;) {
        at += 5;
        const std::string id = kPage.substr(at, kPage.find('"', at) - at);
        EXPECT_TRUE(ids.insert(id).second) << "id " << id << " twice";
    }
    for (const char* id : {"messages", "prompt", "send", "stop", "temperature", "max-tokens",
                           "api-key", "reset", "model", "system", "composer"})
        EXPECT_TRUE(ids.count(id)) << "no element with id " << id;
    EXPECT_TRUE(has("<input id=\"temperature\" type=\"number\" min=\"0\" max=\"2\""));
    EXPECT_TRUE(has("<input id=\"api-key\" type=\"password\""));
    EXPECT_TRUE(has("<button id=\"stop\" type=\"button\" disabled>Stop</button>"));
}

TEST(ChatPage, StreamsFromTheChatEndpointWithAStopAndARate) {
    const std::string script = element_text("script");
    for (const char* part :
         {"fetch(\"/v1/chat/completions\"", "stream: true", "stream_options: {include_usage: true}",
          "new AbortController()", "controller.abort()", "response.body.getReader()", "\"[DONE]\"",
          "tokens/s", "\"Authorization\"] = \"Bearer \"", "fetch(\"/v1/models\""})
        EXPECT_NE(script.find(part), std::string::npos) << "script lacks " << part;
    // Model output is text, never markup.
    EXPECT_EQ(script.find("innerHTML"), std::string::npos);
}

TEST(ChatPage, FetchesNothingFromElsewhere) {
    for (const char* part : {"http://", "https://", "<script src", "<link", "@import", "url("})
        EXPECT_FALSE(has(part)) << "the page holds " << part;
    EXPECT_TRUE(has("connect-src 'self'"));
}

TEST(ChatPage, ScriptParsesInNode) {
    if (std::system("node --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "node is not here";
    char path[] = "/tmp/tandem_chat_page_XXXXXX.js";
    const int fd = mkstemps(path, 3);
    ASSERT_GE(fd, 0);
    close(fd);
    std::ofstream(path) << element_text("script");
    const int status = std::system(("node --check " + std::string(path)).c_str());
    std::remove(path);
    EXPECT_EQ(status, 0) << "node --check failed on the page's script";
}

}  // namespace
}  // namespace tandem::serve
