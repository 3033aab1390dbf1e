"""The LLM knowledge-enhancement workflow: extension labels, synonym merging, explanation synthesis."""
