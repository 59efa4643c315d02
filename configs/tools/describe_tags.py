# `openvocab describe-tags TAG... --out tags.json`: LLM descriptions of new tags (RAM++ recipe:
# "a photo of a {tag}." + 10 answers to each of 5 visual questions = 51 per tag).
# Any OpenAI-compatible server works (set OPENAI_API_KEY, or point base_url at a local server);
# for a local transformers model use backend=dict(type='TransformersLMBackend', model='<hub id or folder>').
custom_imports = dict(imports=['tagging'], allow_failed_imports=False)

describer = dict(
    type='LLMTagDescriber',
    backend=dict(type='OpenAIHTTPBackend', base_url='https://api.openai.com/v1', model='gpt-3.5-turbo',
                 api_key_env='OPENAI_API_KEY', max_tokens=77, temperature=0.99),
    samples_per_prompt=10,
    cache='~/.cache/openvocab/tag_descriptions.json',   # each tag is described once per backend
)
