#!/usr/bin/env python3
# Prints the expected prompts of tests/io/chat_template_test.cpp: the conversations below
# rendered by each template of this folder with jinja2, configured as transformers'
# apply_chat_template configures it (sandboxed, trim_blocks, lstrip_blocks). qwen3.jinja and
# llama3.jinja are the models' own templates; the *_no_tools ones are Qwen2.5's and Llama 3.1's
# with their tool branches removed (tandem refuses tools).
import json
import pathlib

from jinja2.sandbox import ImmutableSandboxedEnvironment

here = pathlib.Path(__file__).parent
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
conversations = {
    "multi": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"},
              {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "2+2?"}],
    "nosystem": [{"role": "user", "content": "  spaced \n"}],
    "systems": [{"role": "system", "content": "S1"}, {"role": "user", "content": "u"},
                {"role": "system", "content": " S2 "}, {"role": "user", "content": "v"}],
    "think_past": [{"role": "user", "content": "q1"},
                   {"role": "assistant", "content": "<think>\nr1\n</think>\n\na1"},
                   {"role": "user", "content": "q2"}],
    "think_current": [{"role": "user", "content": "q1"},
                      {"role": "assistant", "content": "<think>\nr1\n</think>\n\na1"},
                      {"role": "user", "content": "q2"},
                      {"role": "assistant", "content": "<think>r2a<think>r2b</think>x</think>\n\na2"},
                      {"role": "assistant", "content": "plain"}],
}
for name in ["qwen3", "qwen25_no_tools", "llama3", "llama31_no_tools"]:
    template = env.from_string((here / (name + ".jinja")).read_text())
    for conversation, messages in conversations.items():
        text = template.render(messages=messages, add_generation_prompt=True,
                               bos_token="<|begin_of_text|>", tools=None)
        print('    {"%s", "%s", %s},' % (name, conversation, json.dumps(text)))
# ChatTemplate.Qwen3ThinkingSwitch: enable_thinking false and true, with and without the prompt.
qwen3 = env.from_string((here / "qwen3.jinja").read_text())
for prompt, thinking in [(True, False), (True, True), (False, False)]:
    text = qwen3.render(messages=[{"role": "user", "content": "q"}],
                        add_generation_prompt=prompt, enable_thinking=thinking)
    print("    // add_generation_prompt=%s enable_thinking=%s: %s" % (prompt, thinking, json.dumps(text)))
