"""Where things are kept: media objects in S3 (:mod:`.s3`), projection state in SQL."""
