"""Lifeboat's Chalice application: creates the app, attaches powertools, registers the blueprints."""

from chalice import Chalice

from chalicelib.blueprints.api import bp as api_bp
from chalicelib.blueprints.assessment import bp as assessment_bp
from chalicelib.blueprints.drills import bp as drills_bp
from chalicelib.blueprints.failback import bp as failback_bp
from chalicelib.blueprints.janitor import bp as janitor_bp
from chalicelib.blueprints.replication import bp as replication_bp
from chalicelib.blueprints.restore import bp as restore_bp
from chalicelib.blueprints.rollback import bp as rollback_bp
from chalicelib.blueprints.tasks import bp as tasks_bp
from chalicelib.blueprints.triggers import bp as triggers_bp
from chalicelib.blueprints.verification import bp as verification_bp
from chalicelib.middleware import powertools_middleware

app = Chalice(app_name="lifeboat")
app.register_middleware(powertools_middleware, "all")
app.register_blueprint(tasks_bp)
app.register_blueprint(failback_bp)
app.register_blueprint(triggers_bp)
app.register_blueprint(janitor_bp)
app.register_blueprint(verification_bp)
app.register_blueprint(replication_bp)
app.register_blueprint(drills_bp)
app.register_blueprint(assessment_bp)
app.register_blueprint(restore_bp)
app.register_blueprint(rollback_bp)
app.register_blueprint(api_bp)
