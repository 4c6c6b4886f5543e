"""Model backends behind small interfaces (mllm, llm, detector, faces, depth, pose, ocr).

Each backend loads its weights from a local path or the Hugging Face cache only, once,
in a setup step; none downloads at run time. The stages that need them bring them in.

    base      WeightsMissing ("not run: no weights at PATH"), device choice, local loading
    detector  Grounding DINO: boxes for named objects
    faces     Haar face boxes (cascades in the opencv wheel); DeepFace age/gender/emotion/race
    depth     Depth Anything V2: a relative depth map per image
    pose      ViTPose keypoints and the posture rule
    ocr       RapidOCR: text boxes, whole lines, single-line crops
"""
