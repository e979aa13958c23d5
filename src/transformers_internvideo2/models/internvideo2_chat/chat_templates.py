"""Chat templates of the InternVideo2 chat models (VideoChat2 on InternVideo2), as Jinja templates for
`processor.apply_chat_template`.

Two prompt formats exist (docs/videochat.md):

* **Mistral `[INST]`** (InternVideo2-Chat-8B and its HD variant). A conversation is an optional system text (the
  original "instruction", written with no separator), one *media turn* that holds only the video(s), then
  question/answer turns::

      {system}[INST] <Video>{video}</Video>[/INST] [INST] {q1} [/INST]{a1}</s> [INST] {q2} [/INST]{a2}</s>...

  (`[INST]`, `[/INST]` are control tokens of the Mistral v0.3 tokenizer; `</s>` is the end-of-sequence token.)

* **ChatML** (InternVideo2-Chat-8B-InternLM2.5; also what SmolLM2 and Qwen speak)::

      <|im_start|>system\\n{system}<|im_end|>\\n                      (only when the system text is not empty)
      <|im_start|>user\\n<vid>{video}</vid><|im_end|>\\n             (the media turn)
      <|im_start|>user\\n{q1}<|im_end|>\\n<|im_start|>assistant\\n{a1}<|im_end|>\\n</s>...

  The answer ends with `<|im_end|>\\n` followed by the tokenizer's end-of-sequence token (`</s>` for InternLM2.5); for
  tokenizers whose end-of-sequence token *is* `<|im_end|>` (SmolLM2, Qwen) it is not written twice.

Mapping of Transformers chat messages onto these formats:

* a `system` message becomes the system text;
* a `user` message: its `{"type": "video"}` / `{"type": "image"}` items form one media turn (one `<Video>...</Video>`
  or `<Image>...</Image>` block each, `<vid>` / `<img>` in ChatML, no separators; media are expected before the text,
  as in the original, where the media turn comes first). Its text items, joined with a newline, are
  - the message *inside* the media turn (the original `chat(msg=...)`, written `rstrip`ped in the Mistral format:
    `<Video>...</Video>{msg}[/INST]`) when the next message is a user message without media (which holds the question);
  - otherwise a question turn of their own (the usual one-message form `[video, question]`).
  A message with only a video gives only the media turn (the original "caption" samples), one with only text only
  the question turn;
* an `assistant` message is an answer.

`{video}` is the template variable `video_token`, which the processor sets to its placeholder token and later
expands into one placeholder per visual token (per view for HD videos). The ChatML template writes
`<|im_start|>assistant\\n` as the generation prompt; the Mistral prompt already ends where the answer starts. The
template variable `answer_prompt` (the original HD `chat(answer_prompt=...)`, e.g. `"Best option:("`) is written after
the generation prompt when `add_generation_prompt=True`.
"""

from __future__ import annotations


__all__ = [
    "CHATML_VIDEO_CHAT_TEMPLATE",
    "CHAT_TEMPLATES",
    "HD_VIEW_SEPARATORS",
    "MISTRAL_VIDEO_CHAT_TEMPLATE",
    "chat_template_for",
]

# Shared prologue: normalise a message's content into a list of items; split it into its text and its media (videos
# and images, in order); decide whether the text belongs inside the media turn (the original `msg`): it does when the
# next message is a user message without media, which then holds the question.
_CONTENT_ITEMS = (
    "{%- if message['content'] is string -%}"
    "{%- set items = [{'type': 'text', 'text': message['content']}] -%}"
    "{%- else -%}"
    "{%- set items = message['content'] -%}"
    "{%- endif -%}"
    "{%- for item in items -%}"
    "{%- if item['type'] not in ['text', 'video', 'image'] -%}"
    "{{- raise_exception('InternVideo2 chat templates accept text, video and image content only, got a ' "
    "+ item['type'] + ' item.') -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- set text = items | selectattr('type', 'equalto', 'text') | map(attribute='text') | join('\\n') -%}"
    "{%- set media = items | selectattr('type', 'in', ['video', 'image']) | map(attribute='type') | list -%}"
    "{%- set next = loop.nextitem -%}"
    "{%- set next_is_question = next is defined and next['role'] == 'user' and (next['content'] is string or "
    "(next['content'] | selectattr('type', 'in', ['video', 'image']) | list | length) == 0) -%}"
)

_UNKNOWN_ROLE = "{{- raise_exception('Unknown chat role ' + message['role'] + '; expected system, user or assistant.') -}}"

MISTRAL_VIDEO_CHAT_TEMPLATE = (
    "{%- set video_token = video_token | default('<video>') -%}"
    "{%- for message in messages -%}"
    + _CONTENT_ITEMS
    + "{%- if message['role'] == 'system' -%}"
    "{{- text -}}"
    "{%- elif message['role'] == 'user' -%}"
    "{%- if media -%}"
    "{{- '[INST] ' -}}"
    "{%- for kind in media -%}"
    "{%- if kind == 'image' -%}{{- '<Image>' + video_token + '</Image>' -}}"
    "{%- else -%}{{- '<Video>' + video_token + '</Video>' -}}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if next_is_question -%}{{- text.rstrip() -}}{%- endif -%}"
    "{{- '[/INST]' -}}"
    "{%- endif -%}"
    "{%- if text and not (media and next_is_question) -%}{{- ' [INST] ' + text + ' [/INST]' -}}{%- endif -%}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{%- generation -%}{{- text + eos_token -}}{%- endgeneration -%}"
    "{%- else -%}" + _UNKNOWN_ROLE + "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt and answer_prompt is defined and answer_prompt -%}{{- answer_prompt -}}{%- endif -%}"
)

CHATML_VIDEO_CHAT_TEMPLATE = (
    "{%- set video_token = video_token | default('<video>') -%}"
    "{%- for message in messages -%}"
    + _CONTENT_ITEMS
    + "{%- if message['role'] == 'system' -%}"
    "{%- if text -%}{{- '<|im_start|>system\\n' + text + '<|im_end|>\\n' -}}{%- endif -%}"
    "{%- elif message['role'] == 'user' -%}"
    "{%- if media -%}"
    "{{- '<|im_start|>user\\n' -}}"
    "{%- for kind in media -%}"
    "{%- if kind == 'image' -%}{{- '<img>' + video_token + '</img>' -}}"
    "{%- else -%}{{- '<vid>' + video_token + '</vid>' -}}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if next_is_question -%}{{- text -}}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- if text and not (media and next_is_question) -%}{{- '<|im_start|>user\\n' + text + '<|im_end|>\\n' -}}{%- endif -%}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- generation -%}"
    "{{- text + '<|im_end|>\\n' -}}"
    "{%- if eos_token is defined and eos_token and eos_token != '<|im_end|>' -%}{{- eos_token -}}{%- endif -%}"
    "{%- endgeneration -%}"
    "{%- else -%}" + _UNKNOWN_ROLE + "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}"
    "{%- if answer_prompt is defined and answer_prompt -%}{{- answer_prompt -}}{%- endif -%}{%- endif -%}"
)

CHAT_TEMPLATES: dict[str, str] = {
    "mistral": MISTRAL_VIDEO_CHAT_TEMPLATE,
    "chatml": CHATML_VIDEO_CHAT_TEMPLATE,
    # the InternLM2.5 variant speaks ChatML
    "internlm2_5": CHATML_VIDEO_CHAT_TEMPLATE,
}

# Text written between the placeholder runs of two consecutive views of one HD video: the original repeats the whole
# media block once per view (`<Video>v1</Video><Video>v2</Video>...`).
HD_VIEW_SEPARATORS: dict[str, str] = {
    "mistral": "</Video><Video>",
    "chatml": "</vid><vid>",
    "internlm2_5": "</vid><vid>",
}


def chat_template_for(name: str) -> str:
    """The Jinja template called `name`: `"mistral"` (`[INST]`, InternVideo2-Chat-8B), `"chatml"` or
    `"internlm2_5"` (ChatML, InternVideo2-Chat-8B-InternLM2.5, SmolLM2)."""
    if name not in CHAT_TEMPLATES:
        raise ValueError(f"Unknown chat template {name!r}; expected one of {sorted(CHAT_TEMPLATES)}.")
    return CHAT_TEMPLATES[name]
