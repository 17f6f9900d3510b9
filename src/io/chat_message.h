// A message of a conversation, as the chat template renders it: what the server's chat requests,
// `tandem chat` and the fine-tuning data all hold.
#pragma once

#include <string>
#include <string_view>

namespace tandem::io {

enum class Role { System, User, Assistant };

constexpr std::string_view role_name(Role role) {  // "system", "user", "assistant"
    switch (role) {
        case Role::System:
            return "system";
        case Role::User:
            return "user";
        case Role::Assistant:
            return "assistant";
    }
    return "user";
}

struct ChatMessage {
    Role role = Role::User;
    std::string content;
};

}  // namespace tandem::io
