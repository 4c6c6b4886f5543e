"""Model backends behind small interfaces (mllm, llm, detector, faces, depth, pose, ocr).

Each backend loads its weights from a local path or the Hugging Face cache only, once,
in a setup step; none downloads at run time. The stages that need them bring them in.
"""
