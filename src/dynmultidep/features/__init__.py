"""Feature extraction: from a vlog's video file to the corpora's feature layouts.

Needs the optional ``extract`` extra (``pip install -e '.[extract]'``): PyAV
decodes the file, openSMILE computes eGeMAPS descriptors, dlib finds faces and
their 68 landmarks, and :mod:`.vggish` computes LMVD's audio embeddings from a
checkpoint the user supplies. Modules import these packages lazily, so the rest
of the project works without them.
"""
