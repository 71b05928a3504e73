"""Publishing VideoCLIP to the Hugging Face Hub (``upload.py``): variants, model card, output folder and its
fresh-process reload check, the Hub client, and the pipeline that runs them (`pipeline.convert_and_publish`)."""
