"""The Triton layer: the only code that knows tensors and `triton_python_backend_utils`.

    codecs.py  every stage's values as the tensors of its config.pbtxt (numpy only)
    glue.py    what a model.py needs: parameters, inputs, responses, sequence flags, who may call
    bls.py     the stages as BLS calls from inside the server (TritonStages, TritonLlm)
    metrics.py the pipeline's metrics as Triton custom metrics (TritonMetrics)

glue.py, bls.py and metrics.py import `triton_python_backend_utils`, so they load only
inside Triton's Python backend stub; codecs.py loads anywhere.
"""
