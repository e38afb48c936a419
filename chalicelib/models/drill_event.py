"""The EventBridge envelope of a drill request: constants only, cheap enough for app import time."""

SOURCE = "lifeboat.drills"
DETAIL_TYPE = "Lifeboat Drill Requested"
PATTERN = {"source": [SOURCE], "detail-type": [DETAIL_TYPE]}
