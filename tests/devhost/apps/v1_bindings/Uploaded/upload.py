import logging

import azure.functions as func


def on_upload(blob: func.InputStream, copy: func.Out[bytes], seen: func.Out[str]) -> None:
    content = blob.read()
    logging.warning("uploaded %s", blob.name)
    copy.set(content.upper())
    seen.set(f"{blob.name} {blob.length} {content.decode()}")
