"""What the workspace's image viewer and ROI editor read: an acquisition's image layers
(radiance as float32, the photograph as a grey PNG) and its ROIs with their geometry."""
