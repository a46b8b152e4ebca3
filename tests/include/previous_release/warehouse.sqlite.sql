-- The warehouse as create_schema made it in the last release before schema migrations
-- (git c652e6d, 2026-12-03), sqlite DDL generated then from include/yuhang_skills/warehouse.py.
-- Frozen: tests/include/test_migrations.py upgrades a warehouse made by it. Never regenerate.

CREATE TABLE alert_items (
	alert_id INTEGER NOT NULL, 
	item_type VARCHAR(16) NOT NULL, 
	item_key VARCHAR(160) NOT NULL, 
	PRIMARY KEY (alert_id, item_type, item_key)
);

CREATE TABLE alerts (
	alert_id INTEGER NOT NULL, 
	as_of DATE NOT NULL, 
	channel VARCHAR(16) NOT NULL, 
	recipient VARCHAR(200) NOT NULL, 
	recipient_role VARCHAR(20) NOT NULL, 
	site_code VARCHAR(40), 
	subject VARCHAR(300) NOT NULL, 
	message TEXT NOT NULL, 
	items INTEGER NOT NULL, 
	attempts INTEGER NOT NULL, 
	outcome VARCHAR(20) NOT NULL, 
	error TEXT, 
	created_at DATETIME NOT NULL, 
	sent_at DATETIME, 
	follow_up VARCHAR(20), 
	follow_up_alert_id INTEGER, 
	PRIMARY KEY (alert_id)
);

CREATE TABLE early_warnings (
	site_code VARCHAR(8) NOT NULL, 
	year INTEGER NOT NULL, 
	indicator VARCHAR(40) NOT NULL, 
	programme VARCHAR(16) NOT NULL, 
	months_active INTEGER NOT NULL, 
	months_reported INTEGER NOT NULL, 
	actual_to_date NUMERIC(14, 4) NOT NULL, 
	numerator INTEGER, 
	denominator INTEGER, 
	run_rate_per_month NUMERIC(14, 4), 
	projected NUMERIC(14, 4) NOT NULL, 
	target NUMERIC(14, 4) NOT NULL, 
	projected_shortfall NUMERIC(14, 4) NOT NULL, 
	at_risk BOOLEAN NOT NULL, 
	as_of DATE NOT NULL, 
	PRIMARY KEY (site_code, year, indicator)
);

CREATE TABLE eval_diff (
	run_a VARCHAR(40) NOT NULL, 
	run_b VARCHAR(40) NOT NULL, 
	item INTEGER NOT NULL, 
	section VARCHAR(16) NOT NULL, 
	subject VARCHAR(300) NOT NULL, 
	change VARCHAR(16) NOT NULL, 
	value_a TEXT, 
	value_b TEXT, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (run_a, run_b, item)
);

CREATE TABLE eval_district (
	run_id VARCHAR(40) NOT NULL, 
	evaluation_year INTEGER NOT NULL, 
	as_of DATE NOT NULL, 
	score NUMERIC(6, 2) NOT NULL, 
	grade VARCHAR(4) NOT NULL, 
	release_rule VARCHAR(20) NOT NULL, 
	tranche_fen BIGINT NOT NULL, 
	released_fen BIGINT NOT NULL, 
	withheld_fen BIGINT NOT NULL, 
	recoveries_fen BIGINT, 
	net_released_fen BIGINT, 
	excellent_bonus_fen BIGINT, 
	plan_unallocated_fen BIGINT, 
	score_before_exclusions NUMERIC(6, 2), 
	person_times_reported INTEGER, 
	person_times_counted INTEGER, 
	policy_version VARCHAR(60) NOT NULL, 
	input_fingerprint VARCHAR(64) NOT NULL, 
	pii_key_is_demo BOOLEAN NOT NULL, 
	evaluated_at DATETIME NOT NULL, 
	PRIMARY KEY (run_id, evaluation_year)
);

CREATE TABLE eval_excellent_station (
	run_id VARCHAR(40) NOT NULL, 
	evaluation_year INTEGER NOT NULL, 
	site_code VARCHAR(8) NOT NULL, 
	qualifies BOOLEAN NOT NULL, 
	bonus_fen BIGINT NOT NULL, 
	years_evaluated INTEGER NOT NULL, 
	reasons TEXT NOT NULL, 
	source_rows INTEGER NOT NULL, 
	PRIMARY KEY (run_id, evaluation_year, site_code)
);

CREATE TABLE eval_gap (
	run_id VARCHAR(40) NOT NULL, 
	evaluation_year INTEGER NOT NULL, 
	gap_id INTEGER NOT NULL, 
	indicator VARCHAR(60) NOT NULL, 
	site_code VARCHAR(8), 
	year INTEGER, 
	name_zh VARCHAR(200) NOT NULL, 
	target NUMERIC(14, 4) NOT NULL, 
	actual NUMERIC(14, 4), 
	additional_needed NUMERIC(20, 4), 
	unit VARCHAR(24), 
	missing_points NUMERIC(6, 2) NOT NULL, 
	release_gain_fen BIGINT NOT NULL, 
	PRIMARY KEY (run_id, evaluation_year, gap_id)
);

CREATE TABLE eval_indicator (
	run_id VARCHAR(40) NOT NULL, 
	evaluation_year INTEGER NOT NULL, 
	indicator VARCHAR(60) NOT NULL, 
	dimension VARCHAR(30) NOT NULL, 
	name_zh VARCHAR(200) NOT NULL, 
	weight NUMERIC(6, 2) NOT NULL, 
	target NUMERIC(14, 4) NOT NULL, 
	actual NUMERIC(14, 4) NOT NULL, 
	numerator NUMERIC(20, 4) NOT NULL, 
	denominator NUMERIC(20, 4) NOT NULL, 
	points NUMERIC(6, 2) NOT NULL, 
	met BOOLEAN NOT NULL, 
	basis TEXT NOT NULL, 
	source_rows INTEGER NOT NULL, 
	margin_actual NUMERIC(14, 4), 
	PRIMARY KEY (run_id, evaluation_year, indicator)
);

CREATE TABLE eval_integrity (
	run_id VARCHAR(40) NOT NULL, 
	evaluation_year INTEGER NOT NULL, 
	check_name VARCHAR(40) NOT NULL, 
	severity VARCHAR(10) NOT NULL, 
	findings INTEGER NOT NULL, 
	excluded_rows INTEGER NOT NULL, 
	excluded_person_times INTEGER NOT NULL, 
	excluded_fen BIGINT NOT NULL, 
	sites TEXT, 
	PRIMARY KEY (run_id, evaluation_year, check_name)
);

CREATE TABLE eval_plan_2027 (
	run_id VARCHAR(40) NOT NULL, 
	evaluation_year INTEGER NOT NULL, 
	site_code VARCHAR(8) NOT NULL, 
	programme VARCHAR(16) NOT NULL, 
	priority_rank INTEGER NOT NULL, 
	planned_provincial_fen BIGINT NOT NULL, 
	funded_fen BIGINT NOT NULL, 
	keeps_funding BOOLEAN NOT NULL, 
	remaining_after_fen BIGINT NOT NULL, 
	PRIMARY KEY (run_id, evaluation_year, site_code)
);

CREATE TABLE eval_rectification (
	run_id VARCHAR(40) NOT NULL, 
	evaluation_year INTEGER NOT NULL, 
	site_code VARCHAR(8) NOT NULL, 
	year INTEGER NOT NULL, 
	indicator VARCHAR(40) NOT NULL, 
	programme VARCHAR(16) NOT NULL, 
	target NUMERIC(14, 4) NOT NULL, 
	actual NUMERIC(14, 4), 
	attainment NUMERIC(10, 6) NOT NULL, 
	deadline DATE NOT NULL, 
	rectified_on DATE, 
	status VARCHAR(12) NOT NULL, 
	plan_provincial_fen BIGINT NOT NULL, 
	recovery_fen BIGINT NOT NULL, 
	note TEXT, 
	decision_row INTEGER, 
	source_rows INTEGER NOT NULL, 
	PRIMARY KEY (run_id, evaluation_year, site_code, year, indicator)
);

CREATE TABLE eval_release (
	run_id VARCHAR(40) NOT NULL, 
	evaluation_year INTEGER NOT NULL, 
	component VARCHAR(40) NOT NULL, 
	rule VARCHAR(20) NOT NULL, 
	name_zh VARCHAR(200) NOT NULL, 
	amount_fen BIGINT NOT NULL, 
	numerator NUMERIC(20, 4) NOT NULL, 
	denominator NUMERIC(20, 4) NOT NULL, 
	result NUMERIC(14, 6) NOT NULL, 
	target NUMERIC(14, 4) NOT NULL, 
	share NUMERIC(10, 6) NOT NULL, 
	released_fen BIGINT NOT NULL, 
	basis TEXT NOT NULL, 
	PRIMARY KEY (run_id, evaluation_year, component)
);

CREATE TABLE eval_report_evidence (
	run_id VARCHAR(40) NOT NULL, 
	frame VARCHAR(60) NOT NULL, 
	position INTEGER NOT NULL, 
	payload TEXT NOT NULL, 
	PRIMARY KEY (run_id, frame)
);

CREATE TABLE eval_run_inputs (
	run_id VARCHAR(40) NOT NULL, 
	input VARCHAR(300) NOT NULL, 
	sha256 VARCHAR(64) NOT NULL, 
	site_code VARCHAR(8), 
	kind VARCHAR(30), 
	period VARCHAR(10), 
	PRIMARY KEY (run_id, input, sha256)
);

CREATE TABLE eval_runs (
	run_id VARCHAR(40) NOT NULL, 
	evaluation_year INTEGER NOT NULL, 
	as_of DATE NOT NULL, 
	input_fingerprint VARCHAR(64) NOT NULL, 
	policy_version VARCHAR(60) NOT NULL, 
	status VARCHAR(12) NOT NULL, 
	data_complete_on DATE, 
	created_at DATETIME NOT NULL, 
	finalised_at DATETIME, 
	superseded_by VARCHAR(40), 
	supersede_reason TEXT, 
	score NUMERIC(6, 2), 
	grade VARCHAR(4), 
	released_fen BIGINT, 
	recoveries_fen BIGINT, 
	net_released_fen BIGINT, 
	outputs TEXT, 
	PRIMARY KEY (run_id)
);

CREATE UNIQUE INDEX uq_eval_runs_one_final_per_year ON eval_runs (evaluation_year) WHERE status = 'final';

CREATE TABLE eval_signoffs (
	run_id VARCHAR(40) NOT NULL, 
	role VARCHAR(20) NOT NULL, 
	name VARCHAR(100) NOT NULL, 
	comment TEXT, 
	signed_at DATETIME NOT NULL, 
	signed_by VARCHAR(100), 
	PRIMARY KEY (run_id, role)
);

CREATE TABLE eval_site (
	run_id VARCHAR(40) NOT NULL, 
	evaluation_year INTEGER NOT NULL, 
	site_code VARCHAR(8) NOT NULL, 
	year INTEGER NOT NULL, 
	programme VARCHAR(16) NOT NULL, 
	indicator VARCHAR(40) NOT NULL, 
	target NUMERIC(14, 4) NOT NULL, 
	actual NUMERIC(14, 4), 
	attainment NUMERIC(10, 6) NOT NULL, 
	met BOOLEAN NOT NULL, 
	shortfall NUMERIC(14, 4) NOT NULL, 
	source_rows INTEGER NOT NULL, 
	submissions INTEGER, 
	deadline DATE, 
	rectification_status VARCHAR(12), 
	recovery_fen BIGINT, 
	actual_reported NUMERIC(14, 4), 
	PRIMARY KEY (run_id, evaluation_year, site_code, year, indicator)
);

CREATE TABLE eval_submissions (
	run_id VARCHAR(40) NOT NULL, 
	evaluation_year INTEGER NOT NULL, 
	item INTEGER NOT NULL, 
	record VARCHAR(16) NOT NULL, 
	site_code VARCHAR(8) NOT NULL, 
	kind VARCHAR(30) NOT NULL, 
	period VARCHAR(10) NOT NULL, 
	due_date DATE, 
	received_at DATETIME, 
	days_late INTEGER, 
	detail TEXT, 
	PRIMARY KEY (run_id, evaluation_year, item)
);

CREATE TABLE eval_village (
	run_id VARCHAR(40) NOT NULL, 
	evaluation_year INTEGER NOT NULL, 
	site_code VARCHAR(8) NOT NULL, 
	year INTEGER NOT NULL, 
	name_zh VARCHAR(200), 
	town VARCHAR(40), 
	low_income_households INTEGER, 
	households_with_skill INTEGER, 
	coverage NUMERIC(10, 6), 
	households_short INTEGER, 
	outcomes_reported BOOLEAN NOT NULL, 
	PRIMARY KEY (run_id, evaluation_year, site_code, year)
);

CREATE TABLE expected_submissions (
	site_code VARCHAR(8) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	period VARCHAR(7) NOT NULL, 
	programme VARCHAR(16) NOT NULL, 
	period_start DATE NOT NULL, 
	period_end DATE NOT NULL, 
	nominal_due DATE NOT NULL, 
	due_date DATE NOT NULL, 
	shifted BOOLEAN NOT NULL, 
	calendar_source VARCHAR(60) NOT NULL, 
	calendar_official BOOLEAN NOT NULL, 
	as_of DATE NOT NULL, 
	PRIMARY KEY (site_code, kind, period)
);

CREATE TABLE failure_alerts (
	failure_alert_id INTEGER NOT NULL, 
	kind VARCHAR(20) NOT NULL, 
	dag_id VARCHAR(100) NOT NULL, 
	run_id VARCHAR(250) NOT NULL, 
	item_key VARCHAR(400) NOT NULL, 
	channel VARCHAR(16) NOT NULL, 
	recipient VARCHAR(200) NOT NULL, 
	subject VARCHAR(300) NOT NULL, 
	message TEXT NOT NULL, 
	attempts INTEGER NOT NULL, 
	outcome VARCHAR(20) NOT NULL, 
	error TEXT, 
	created_at DATETIME NOT NULL, 
	sent_at DATETIME, 
	PRIMARY KEY (failure_alert_id)
);

CREATE TABLE intake_not_processed (
	relative_path TEXT NOT NULL, 
	reason_code VARCHAR(40) NOT NULL, 
	reason_zh TEXT NOT NULL, 
	reason_en TEXT NOT NULL, 
	as_of DATE NOT NULL, 
	seen_at DATETIME NOT NULL
);

CREATE TABLE integrity_exclusions (
	kind VARCHAR(16) NOT NULL, 
	submission_id VARCHAR(120) NOT NULL, 
	source_row INTEGER NOT NULL, 
	check_name VARCHAR(40) NOT NULL, 
	finding_id INTEGER NOT NULL, 
	PRIMARY KEY (kind, submission_id, source_row)
);

CREATE TABLE integrity_findings (
	finding_id INTEGER NOT NULL, 
	check_name VARCHAR(40) NOT NULL, 
	severity VARCHAR(10) NOT NULL, 
	site_code VARCHAR(8) NOT NULL, 
	sites VARCHAR(200) NOT NULL, 
	year INTEGER, 
	periods VARCHAR(200), 
	subject_kind VARCHAR(16) NOT NULL, 
	subject VARCHAR(200) NOT NULL, 
	measure NUMERIC(18, 4), 
	threshold NUMERIC(18, 4), 
	evidence_rows INTEGER NOT NULL, 
	excluded_rows INTEGER NOT NULL, 
	evidence TEXT NOT NULL, 
	explanation_zh TEXT NOT NULL, 
	explanation_en TEXT NOT NULL, 
	PRIMARY KEY (finding_id)
);

CREATE INDEX ix_integrity_findings_check_name ON integrity_findings (check_name);

CREATE TABLE missing_submissions (
	site_code VARCHAR(8) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	period VARCHAR(7) NOT NULL, 
	programme VARCHAR(16) NOT NULL, 
	town VARCHAR(50) NOT NULL, 
	nominal_due DATE NOT NULL, 
	due_date DATE NOT NULL, 
	calendar_official BOOLEAN NOT NULL, 
	status VARCHAR(12) NOT NULL, 
	days_overdue INTEGER NOT NULL, 
	escalated BOOLEAN NOT NULL, 
	last_rejected_at DATETIME, 
	first_alerted DATETIME, 
	last_alerted DATETIME, 
	resolved_at DATETIME, 
	resolution_announced_at DATETIME, 
	as_of DATE NOT NULL, 
	PRIMARY KEY (site_code, kind, period)
);

CREATE TABLE quarantine (
	quarantine_id INTEGER NOT NULL, 
	submission_id VARCHAR(120) NOT NULL, 
	sha256 VARCHAR(64) NOT NULL, 
	source_file VARCHAR(500) NOT NULL, 
	site_code VARCHAR(16), 
	period VARCHAR(7), 
	kind VARCHAR(16), 
	source_row INTEGER, 
	column_name VARCHAR(60), 
	value TEXT, 
	expectation VARCHAR(120) NOT NULL, 
	reason_zh TEXT NOT NULL, 
	reason_en TEXT NOT NULL, 
	severity VARCHAR(8) DEFAULT 'error' NOT NULL, 
	PRIMARY KEY (quarantine_id)
);

CREATE INDEX ix_quarantine_submission_id ON quarantine (submission_id);

CREATE TABLE ref_base_rule (
	share_numerator BIGINT NOT NULL, 
	share_denominator BIGINT NOT NULL, 
	cap_fen BIGINT NOT NULL
);

CREATE TABLE ref_calendar (
	day DATE NOT NULL, 
	day_number INTEGER NOT NULL, 
	year INTEGER NOT NULL, 
	PRIMARY KEY (day), 
	UNIQUE (day_number)
);

CREATE TABLE ref_codes (
	code_list VARCHAR(40) NOT NULL, 
	code VARCHAR(40) NOT NULL, 
	PRIMARY KEY (code_list, code)
);

CREATE TABLE ref_implementation_period (
	start_date DATE NOT NULL, 
	end_date DATE NOT NULL
);

CREATE TABLE ref_integrity_params (
	check_name VARCHAR(40) NOT NULL, 
	parameter VARCHAR(40) NOT NULL, 
	value NUMERIC(18, 4) NOT NULL, 
	PRIMARY KEY (check_name, parameter)
);

CREATE TABLE ref_provincial_received (
	year INTEGER NOT NULL, 
	received_fen BIGINT NOT NULL, 
	PRIMARY KEY (year)
);

CREATE TABLE ref_retirement (
	sex VARCHAR(1) NOT NULL, 
	birth_date DATE NOT NULL, 
	retirement_date DATE NOT NULL, 
	PRIMARY KEY (sex, birth_date)
);

CREATE TABLE ref_site_years (
	site_code VARCHAR(8) NOT NULL, 
	year INTEGER NOT NULL, 
	programme VARCHAR(16) NOT NULL, 
	months_active INTEGER NOT NULL, 
	target_months INTEGER NOT NULL, 
	PRIMARY KEY (site_code, year)
);

CREATE TABLE ref_sites (
	site_code VARCHAR(8) NOT NULL, 
	programme VARCHAR(16) NOT NULL, 
	name_zh VARCHAR(200) NOT NULL, 
	town VARCHAR(50) NOT NULL, 
	batch_year INTEGER NOT NULL, 
	active_from DATE NOT NULL, 
	industry_focus VARCHAR(50), 
	contact_name VARCHAR(100), 
	contact_email VARCHAR(200), 
	plan_provincial_fen BIGINT NOT NULL, 
	plan_district_fen BIGINT NOT NULL, 
	PRIMARY KEY (site_code)
);

CREATE TABLE ref_targets (
	programme VARCHAR(16) NOT NULL, 
	indicator VARCHAR(40) NOT NULL, 
	target NUMERIC(14, 4) NOT NULL, 
	per_year BOOLEAN NOT NULL, 
	PRIMARY KEY (programme, indicator)
);

CREATE TABLE stg_finance (
	submission_id VARCHAR(120) NOT NULL, 
	source_row INTEGER NOT NULL, 
	site_code VARCHAR(8) NOT NULL, 
	period VARCHAR(7) NOT NULL, 
	voucher_no VARCHAR(80) NOT NULL, 
	pay_date DATE NOT NULL, 
	amount_fen BIGINT NOT NULL, 
	fund_source VARCHAR(16) NOT NULL, 
	category VARCHAR(30) NOT NULL, 
	payee VARCHAR(200) NOT NULL, 
	invoice_no VARCHAR(80), 
	description TEXT, 
	PRIMARY KEY (submission_id, source_row)
)
 WITHOUT ROWID;

CREATE TABLE stg_outcomes (
	submission_id VARCHAR(120) NOT NULL, 
	source_row INTEGER NOT NULL, 
	site_code VARCHAR(8) NOT NULL, 
	period VARCHAR(7) NOT NULL, 
	year INTEGER NOT NULL, 
	low_income_households INTEGER NOT NULL, 
	households_with_skill INTEGER NOT NULL, 
	trainees INTEGER NOT NULL, 
	avg_income_gain_fen BIGINT NOT NULL, 
	PRIMARY KEY (submission_id, source_row)
)
 WITHOUT ROWID;

CREATE TABLE stg_roster (
	submission_id VARCHAR(120) NOT NULL, 
	source_row INTEGER NOT NULL, 
	site_code VARCHAR(8) NOT NULL, 
	period VARCHAR(7) NOT NULL, 
	class_id VARCHAR(80) NOT NULL, 
	course VARCHAR(200) NOT NULL, 
	occupation VARCHAR(100) NOT NULL, 
	level VARCHAR(24) NOT NULL, 
	industry VARCHAR(30) NOT NULL, 
	start_date DATE NOT NULL, 
	end_date DATE NOT NULL, 
	hours NUMERIC(8, 2) NOT NULL, 
	person_key VARCHAR(64) NOT NULL, 
	name_key VARCHAR(64) NOT NULL, 
	birth_date DATE NOT NULL, 
	sex VARCHAR(1) NOT NULL, 
	age_on_start INTEGER NOT NULL, 
	person_group VARCHAR(24) NOT NULL, 
	low_income_household BOOLEAN, 
	assessed BOOLEAN NOT NULL, 
	passed BOOLEAN, 
	certificate_no VARCHAR(80), 
	satisfaction VARCHAR(24), 
	PRIMARY KEY (submission_id, source_row)
)
 WITHOUT ROWID;

CREATE TABLE stg_survey (
	submission_id VARCHAR(120) NOT NULL, 
	source_row INTEGER NOT NULL, 
	site_code VARCHAR(8) NOT NULL, 
	period VARCHAR(7) NOT NULL, 
	respondent_type VARCHAR(16) NOT NULL, 
	survey_date DATE NOT NULL, 
	rating VARCHAR(24) NOT NULL, 
	PRIMARY KEY (submission_id, source_row)
)
 WITHOUT ROWID;

CREATE TABLE submission_arrivals (
	arrival_id INTEGER NOT NULL, 
	relative_path TEXT NOT NULL, 
	sha256 VARCHAR(64) NOT NULL, 
	submission_id VARCHAR(120) NOT NULL, 
	first_seen_at DATETIME NOT NULL, 
	file_mtime DATETIME, 
	PRIMARY KEY (arrival_id)
);

CREATE INDEX ix_submission_arrivals_sha256 ON submission_arrivals (sha256);

CREATE INDEX ix_submission_arrivals_submission_id ON submission_arrivals (submission_id);

CREATE TABLE submissions (
	submission_id VARCHAR(120) NOT NULL, 
	sha256 VARCHAR(64) NOT NULL, 
	site_code VARCHAR(16) NOT NULL, 
	period VARCHAR(7) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	original_name VARCHAR(500) NOT NULL, 
	archive_path VARCHAR(500) NOT NULL, 
	size_bytes BIGINT NOT NULL, 
	received_at DATETIME NOT NULL, 
	ingested_at DATETIME NOT NULL, 
	version INTEGER, 
	is_current BOOLEAN NOT NULL, 
	status VARCHAR(24) NOT NULL, 
	rows_read INTEGER NOT NULL, 
	rows_staged INTEGER NOT NULL, 
	rows_quarantined INTEGER NOT NULL, 
	encoding VARCHAR(20), 
	header_row INTEGER, 
	message TEXT, 
	PRIMARY KEY (submission_id)
);

CREATE INDEX ix_submissions_sha256 ON submissions (sha256);

CREATE TABLE task_failures (
	failure_id INTEGER NOT NULL, 
	dag_id VARCHAR(100) NOT NULL, 
	run_id VARCHAR(250) NOT NULL, 
	task_id VARCHAR(250) NOT NULL, 
	map_index INTEGER NOT NULL, 
	try_number INTEGER NOT NULL, 
	error TEXT, 
	log_url TEXT, 
	failed_at DATETIME NOT NULL, 
	PRIMARY KEY (failure_id)
);

CREATE TABLE validation_runs (
	submission_id VARCHAR(120) NOT NULL, 
	suite VARCHAR(60) NOT NULL, 
	expectations INTEGER NOT NULL, 
	failed_expectations INTEGER NOT NULL, 
	success BOOLEAN NOT NULL, 
	evaluated_rows INTEGER NOT NULL, 
	run_at DATETIME NOT NULL, 
	results_json TEXT NOT NULL, 
	PRIMARY KEY (submission_id)
);
